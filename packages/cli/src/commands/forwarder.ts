import { createLogger, loadConfigFile } from '@tributary/core';
import { Forwarder, forwarderConfigSpec } from '@tributary/forwarder';

/** Starts a forwarder and stops it cleanly on SIGTERM/SIGINT (exit 0). */
export async function runForwarder(configPath: string): Promise<void> {
  const config = loadConfigFile(forwarderConfigSpec, configPath);
  const logger = createLogger('forwarder', config.log_level);
  const forwarder = await Forwarder.start(config, logger);
  const stop = (signal: string) => {
    logger.info({ signal }, `Received ${signal}; draining.`);
    forwarder.stop().then(
      () => process.exit(0),
      (err: Error) => {
        logger.error({ code: 'TRB_STOP_FAILED', err: err.message }, `Shutdown failed: ${err.message}`);
        process.exit(1);
      },
    );
  };
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
}
