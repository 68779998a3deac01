/** `tail:`: the tail input; built only when a role's config has a `tail:` key (and `tail.enabled`). */
import type { InputSpec } from '../spec';
import { type TailInputConfig, tailInputSchema } from './config';
import { createTailInput } from './tail-input';

export const tailInput: InputSpec<'tail', typeof tailInputSchema, TailInputConfig> = {
  type: 'tail',
  schema: tailInputSchema,
  create: createTailInput,
};
