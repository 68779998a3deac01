#!/usr/bin/env node
// Writes docs/configuration.md from the config schemas and docs/error-codes.md from core's code registry (run after `pnpm build`).
const { writeFileSync } = require('node:fs');
const { join } = require('node:path');
const { renderConfigReference } = require('../packages/cli/dist/docs/config-reference.js');
const { renderErrorCodes } = require('../packages/cli/dist/docs/error-codes.js');
writeFileSync(join(__dirname, '..', 'docs', 'configuration.md'), renderConfigReference());
writeFileSync(join(__dirname, '..', 'docs', 'error-codes.md'), renderErrorCodes());
console.log('docs/configuration.md and docs/error-codes.md written.');
