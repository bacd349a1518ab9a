"""What runs inside a gateway environment's replicas: the trusted supervisor's pieces and the jailed
worker that executes tenant code. Standard library (and pymongo on the supervisor side) only: this
package never imports the control plane, so it can be tested without Ray or the platform.
"""
