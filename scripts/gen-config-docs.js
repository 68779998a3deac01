#!/usr/bin/env node
// Writes docs/configuration.md from the config schemas (run after `pnpm build`).
const { writeFileSync } = require('node:fs');
const { join } = require('node:path');
const { renderConfigReference } = require('../packages/cli/dist/docs/config-reference.js');
writeFileSync(join(__dirname, '..', 'docs', 'configuration.md'), renderConfigReference());
console.log('docs/configuration.md written.');
