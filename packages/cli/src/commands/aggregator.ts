import { Aggregator, aggregatorConfigSpec } from '@tributary/aggregator';
import { runRole } from './run-role';

export function runAggregator(configPath: string): Promise<void> {
  return runRole('aggregator', aggregatorConfigSpec, configPath, (config, logger) => Aggregator.start(config, logger));
}
