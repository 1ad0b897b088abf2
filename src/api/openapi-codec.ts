/** The codec server's operations in the OpenAPI document (Temporal's remote codec protocol, operators only). */
import { payloadsSchema } from './codec';
import { common, json, jsonBody, jsonSchema, problem, ref, security, type Json } from './openapi-parts';

const namespaceHeader = (namespace: string) => ({
  name: 'X-Namespace',
  in: 'header',
  required: false,
  description: "The payloads' namespace, as the Temporal UI and CLI send it: it must be the one this API uses",
  schema: { type: 'string', enum: [namespace] },
});

const operation = (namespace: string, operationId: string, summary: string): Json => ({
  post: {
    operationId,
    summary,
    security,
    parameters: [namespaceHeader(namespace)],
    requestBody: jsonBody('Payloads'),
    responses: {
      '200': json('The payloads, in the same order', ref('Payloads')),
      '400': problem('Not a Payloads object, another namespace, or a payload that cannot be decoded (undecodable-payload)'),
      '413': problem('The body is over the size limit'),
      ...common,
    },
  },
});

/** The codec's part of the document, for the namespace the API serves. */
export const codecOpenApi = (namespace: string) => ({
  schemas: { Payloads: jsonSchema(payloadsSchema, 'input') },
  paths: {
    '/codec/decode': operation(
      namespace,
      'codecDecode',
      'Decode payloads as stored in Temporal: decrypt, decompress (operators; the Temporal UI and CLI call it)',
    ),
    '/codec/encode': operation(
      namespace,
      'codecEncode',
      'Encode payloads as Switchyard stores them in Temporal: compress, encrypt (operators)',
    ),
  },
});
