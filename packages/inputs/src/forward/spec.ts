/** `forward:`: the Forward Protocol input (Fluentd in_forward compatible). */
import type { InputSpec } from '../spec';
import { type ForwardInputConfig, forwardInputSchema } from './config';
import { createForwardInput } from './forward-input';

export const forwardInput: InputSpec<'forward', typeof forwardInputSchema, ForwardInputConfig> = {
  type: 'forward',
  schema: forwardInputSchema,
  create: createForwardInput,
};
