import { StoreError } from "./store-error.ts";

/** No API key has this id. */
export function apiKeyNotFound(id: string): StoreError {
  return new StoreError("not_found", `no API key with id ${JSON.stringify(id)}`);
}
