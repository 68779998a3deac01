import { aggregatorConfigSpec } from '@tributary/aggregator';
import { ConfigError, type ConfigSchema, loadConfigFile } from '@tributary/core';
import { forwarderConfigSpec } from '@tributary/forwarder';

const specs: Record<string, ConfigSchema<unknown>> = {
  forwarder: forwarderConfigSpec as ConfigSchema<unknown>,
  aggregator: aggregatorConfigSpec as ConfigSchema<unknown>,
};

/** Prints whether a config file is valid, and every problem when not. Returns the exit code. */
export function checkConfig(file: string, role: string): number {
  const spec = specs[role];
  if (!spec) {
    console.error(`Unknown role "${role}" (known: ${Object.keys(specs).join(', ')}).`);
    return 2;
  }
  try {
    loadConfigFile(spec, file);
    console.log(`${file}: valid ${role} configuration.`);
    return 0;
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(err.message);
      return 1;
    }
    throw err;
  }
}
