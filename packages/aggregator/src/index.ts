export * from './aggregator';
export * from './config';
