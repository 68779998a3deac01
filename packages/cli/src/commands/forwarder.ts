import { Forwarder, forwarderConfigSpec } from '@tributary/forwarder';
import { runRole } from './run-role';

export function runForwarder(configPath: string): Promise<void> {
  return runRole('forwarder', forwarderConfigSpec, configPath, (config, logger) => Forwarder.start(config, logger));
}
