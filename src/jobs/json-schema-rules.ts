/**
 * Rules between fields, which zod checks in refinements, stated as JSON Schema keywords for the OpenAPI
 * document (zod's `.meta()` adds them to the generated schema), so that a request valid by the document
 * is one the API accepts. Rules JSON Schema has no keyword for (one number no larger than another,
 * names unique across nested lists) are only described.
 */

/** Meta for an object that may have `field` only when it matches `when`. */
export const allowedOnlyWhen = (when: Record<string, unknown>, field: string) => ({
  if: when,
  else: { properties: { [field]: false } },
});

/** Meta for an object that has `field` exactly when it matches `when`. */
export const requiredExactlyWhen = (when: Record<string, unknown>, field: string) => ({
  if: when,
  then: { required: [field] },
  else: { properties: { [field]: false } },
});
