import { type ConfigSchema, createLogger, loadConfigFile } from '@tributary/core';

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
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, `Received ${signal}; draining.`);
    role.stop().then(
      () => process.exit(0),
      (err: Error) => {
        logger.error({ code: 'TRB_STOP_FAILED', err: err.message }, `Shutdown failed: ${err.message}`);
        process.exit(1);
      },
    );
  };
  // `on`, not `once`: with `once` the listener is gone before it runs, and a
  // SIGTERM sent from a shell was seen to end the process with the default
  // action instead of draining. A second signal is ignored while draining.
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}
