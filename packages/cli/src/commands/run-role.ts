import { type ConfigSchema, createLogger, loadConfigFile } from '@tributary/core';
import { drainOnSignals } from './shutdown';

interface Role {
  stop(): Promise<void>;
}

/** Loads a config, starts a role, and stops it cleanly on SIGTERM/SIGINT (exit 0). */
export async function runRole<T extends { log_level: string }>(
  name: string,
  spec: ConfigSchema<T>,
  configPath: string,
  start: (config: T, logger: ReturnType<typeof createLogger>) => Promise<Role>,
): Promise<void> {
  const config = loadConfigFile(spec, configPath) as T;
  const logger = createLogger(name, config.log_level);
  const role = await start(config, logger);
  drainOnSignals(logger, (signal) => {
    logger.info({ signal }, `Received ${signal}; draining.`);
    return role.stop();
  });
}
