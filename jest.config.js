/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  transform: { '^.+\\.ts$': ['@swc/jest', { jsc: { target: 'es2022', parser: { syntax: 'typescript' } } }] },
  moduleNameMapper: {
    '^@tributary/([a-z-]+)$': '<rootDir>/packages/$1/src',
    // deep imports of one module (the encoder threads' light imports): the same source file the index exports
    '^@tributary/([a-z-]+)/dist/(.*)$': '<rootDir>/packages/$1/src/$2',
  },
  testMatch: ['<rootDir>/packages/*/src/**/*.test.ts', '<rootDir>/test/**/*.test.ts'],
  testTimeout: 60_000,
  // A real Kafka broker for the Kafka legs, from ../shared/kafka when it is there (test/kafka-broker.js).
  globalSetup: '<rootDir>/test/global-setup.js',
  globalTeardown: '<rootDir>/test/global-teardown.js',
  maxWorkers: 2,
};
