/**
 * A spec the operator cannot realise (normally rejected at admission by the CRD's CEL rules; this
 * catches what an older API server let through). Reconcile reports it as `Ready=False` with `reason`.
 */
export class InvalidSpecError extends Error {
  override readonly name = 'InvalidSpecError';
  readonly code = 'InvalidSpec';
  /** CamelCase, for the Ready condition. */
  readonly reason: string;

  constructor(reason: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.reason = reason;
  }
}
