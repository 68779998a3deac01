export * from './chain';
export * from './record-accessor';
export * from './registry';
export * from './spec';
