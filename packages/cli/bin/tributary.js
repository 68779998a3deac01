#!/usr/bin/env node
// Long-running commands record SIGTERM/SIGINT from the first moment, before the rest loads
// (see src/commands/shutdown.ts); every other command keeps the default signal behaviour.
if (['up', 'forwarder', 'aggregator'].includes(process.argv[2])) require('../dist/commands/shutdown.js').catchSignalsEarly();
require('../dist/main.js').main(process.argv);
