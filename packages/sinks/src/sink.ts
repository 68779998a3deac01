/**
 * The sink contracts live in core (pipeline.ts) with the other pipeline
 * contracts; sinks import them from here to keep their imports short.
 */
export type { LineBatch, LineSink, ObjectSink, Sink, SinkObject } from '@tributary/core';
