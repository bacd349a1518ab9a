"""The jailed workers of one replica: ``launcher`` spawns one and talks to it over ``channel``;
``worker_pool`` keeps a few warm and schedules calls onto them."""
