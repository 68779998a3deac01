import { type ConfigSchema, createLogger, loadConfigFile } from '@tributary/core';
import { drainOnSignals, exitOnUnhandled } from './shutdown';

interface Role {
  stop(): Promise<void>;
}

/**
 * Loads a config, starts a role, and stops it cleanly on SIGTERM/SIGINT (exit
 * 0); an unhandled rejection or uncaught exception exits 1 with a coded line.
 * A role does not watch for its parent's death: supervisors (systemd, container
 * runtimes) signal it directly, and a role detached on purpose (`setsid`,
 * `nohup … &` in a start script) must keep running.
 */
export async function runRole<T extends { log_level: string }>(
  name: string,
  spec: ConfigSchema<T>,
  configPath: string,
  start: (config: T, logger: ReturnType<typeof createLogger>) => Promise<Role>,
): Promise<void> {
  const config = loadConfigFile(spec, configPath) as T;
  const logger = createLogger(name, config.log_level);
  exitOnUnhandled(logger);
  const role = await start(config, logger);
  drainOnSignals(logger, (signal) => {
    logger.info({ signal }, `Received ${signal}; draining.`);
    return role.stop();
  });
}
