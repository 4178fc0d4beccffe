-- Act as the configured role until the migrating transaction ends (objects created are then its own).
SET LOCAL ROLE {role};
