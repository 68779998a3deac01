export * from './chain';
export * from './chunks';
export * from './egress';
export * from './metrics';
export { OutputPool } from './output';
export * from './record-accessor';
export * from './registry';
export * from './spec';
