// Shapes of the control plane's answers (API.md and docs/api.md).

export type Phase =
  | "Creating"
  | "Created"
  | "Starting"
  | "Started"
  | "Stopping"
  | "Stopped"
  | "Deleting"
  | "Deleted";

export interface Condition {
  type: "Ready" | "Failed";
  status: boolean;
  reason: string;
  message: string;
  since: string;
}

export interface RateLimit {
  count: number;
  windowSeconds: number;
}

/** Where a gateway's environments run: loaded on demand into the shared runtime, or on their own replicas. */
export type Tier = "shared" | "dedicated";

/** A shared-runtime replica that has an environment loaded now. */
export interface LoadedOn {
  replica: string;
  node: string;
}

export interface Environment {
  name: string;
  state: string;
  phase: Phase;
  url: string;
  authType: "key-auth" | "none";
  rateLimit: RateLimit | null;
  conditions: Condition[];
  tier: Tier;
  /** Empty while the environment is idle (not loaded), and on the dedicated tier. */
  loadedOn: LoadedOn[];
}

/** On the shared tier only `tier` applies; the sizing fields are the dedicated tier's. */
export interface Bundle {
  tier: Tier;
  cpu: number;
  memory: number;
  minReplicas: number;
  maxReplicas: number;
  resources?: Record<string, number>;
}

export interface Gateway {
  gatewayId: string;
  name: string;
  state: "Running" | "Stopped" | "Deleted";
  phase: Phase;
  bundle: Bundle;
  promotionPipeline: { enabled: boolean; stages: string[] };
  conditions: Condition[];
  createdAt: string;
  updatedAt: string;
  environments: Environment[];
}

export interface Publication {
  version: number;
  publishedAt: string;
  publishedBy: string;
  promotedFrom: string | null;
}

export interface FunctionInfo {
  gatewayId: string;
  name: string;
  description: string | null;
  version: number;
  hash: string;
  methods: string[];
  timeoutSeconds: number;
  inputSchema: Record<string, unknown>;
  createdAt: string;
  updatedAt: string;
  updatedBy: string;
  published: Record<string, Publication>;
  code?: string;
}

export interface FunctionVersion {
  version: number;
  hash: string;
  changelog: string | null;
  author: string;
  at: string;
  code?: string;
}

export interface CodeProblem {
  line: number;
  column: number;
  message: string;
}

export interface LogEntry {
  time: string;
  function: string;
  requestId: string;
  level: string;
  message: string;
}

export interface DebugResult {
  status: number;
  headers: Record<string, string>;
  body: unknown;
  logs: unknown[];
  durationMs: number;
}

export interface CallAnswer {
  url: string;
  status: number;
  headers: Record<string, string>;
  body: string;
  json: unknown;
  truncated: boolean;
  durationMs: number;
}

export interface Variable {
  name: string;
  secret: boolean;
  value: string | null;
  masked: boolean;
  updatedAt?: string;
}

export interface Application {
  applicationId: string;
  name: string;
  description: string | null;
  organization: string | null;
  createdAt: string;
}

export interface Grant {
  grantId: string;
  applicationId: string;
  credentialId: string;
  keyPrefix: string;
  gatewayId: string;
  environment: string;
  rateLimit: RateLimit | null;
  status: string;
  applied: boolean;
  createdAt: string;
}

export interface IssuedGrant extends Grant {
  apiKey: string;
}

export interface Tool {
  name: string;
  description: string;
  inputSchema: JsonSchema;
  outputSchema: JsonSchema | null;
  gatewayId: string;
  environment: string;
  function: string;
  fromRegistry: boolean;
}

export interface GrantTools {
  grantId: string;
  gatewayId: string;
  environment: string;
  mcpUrl: string;
  tools: Tool[];
}

export interface JsonSchema {
  type?: string | string[];
  title?: string;
  description?: string;
  properties?: Record<string, JsonSchema>;
  required?: string[];
  items?: JsonSchema;
  enum?: unknown[];
  default?: unknown;
  anyOf?: JsonSchema[];
  additionalProperties?: boolean | JsonSchema;
}

export interface FunctionMetrics {
  environment: string;
  function: string;
  invocations: number;
  errors: number;
  byStatusClass: Record<string, number>;
  latency: { count: number; meanMs: number | null; p50Ms: number | null; p95Ms: number | null; p99Ms: number | null };
}

export interface GatewayMetrics {
  gatewayId: string;
  functions: FunctionMetrics[];
  dashboardUrl: string;
}

export interface Definition {
  name: string;
  kind: "function" | "class" | "method" | "property" | "value" | "module";
  signature: string;
  doc: string;
  members: Definition[];
}

export interface ModuleDefinitions {
  module: string;
  doc: string;
  members: Definition[];
}

export interface GatewayEvent {
  [key: string]: unknown;
}

export const ENVIRONMENTS = ["dev", "staging", "prod"] as const;
