// The errors every store throws the same way, whatever its backend, so that entries map them
// alike (HTTP 404 / 409 / 400, a CLI message).

/** What the call names does not exist (or is not the caller's). */
export class NotFoundError extends Error {
  override name = 'NotFoundError';
}

/** What the call would create exists already, or someone else changed it first. */
export class ConflictError extends Error {
  override name = 'ConflictError';
}

/** Input a store cannot use (e.g. a pagination cursor it did not issue). */
export class InvalidInputError extends Error {
  override name = 'InvalidInputError';
}
