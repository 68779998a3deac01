/** `http:`: the HTTP input (Fluentd in_http compatible); built only while `http.enabled`. */
import type { InputSpec } from '../spec';
import { type HttpInputConfig, httpInputSchema } from './config';
import { createHttpInput } from './http-input';

export const httpInput: InputSpec<'http', typeof httpInputSchema, HttpInputConfig> = {
  type: 'http',
  schema: httpInputSchema,
  create: createHttpInput,
};
