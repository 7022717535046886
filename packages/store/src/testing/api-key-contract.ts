import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { StoreError } from "../store-error.ts";
import type { NewApiKey, Store } from "../types.ts";
import type { ContractStoreOptions } from "./store-contract.ts";

/** The API key behaviour every Store must have; see storeContract. */
export function apiKeyContract(
  name: string,
  open: (options?: ContractStoreOptions) => Promise<Store>,
  options: { skip?: string } = {},
): void {
  describe(`${name} store contract: API keys`, { skip: options.skip ?? false }, () => {
    const withStore = async (body: (store: Store) => Promise<void>) => {
      const store = await open();
      try {
        await body(store);
      } finally {
        await store.close();
      }
    };
    // Whole milliseconds: what both databases keep.
    const at = (iso: string) => new Date(iso);
    const newKey = (id: string, overrides: Partial<NewApiKey> = {}): NewApiKey => ({
      id,
      name: `key ${id}`,
      roles: ["fulfillment"],
      hash: "ab".repeat(32),
      createdAt: at("2026-01-01T00:00:00.000Z"),
      createdBy: "1",
      expiresAt: undefined,
      ...overrides,
    });

    it("stores a key and reads it back by id, never used or revoked yet", () =>
      withStore(async (store) => {
        const expiresAt = at("2027-01-01T00:00:00.123Z");
        const created = await store.apiKeys.create(newKey("k1", { expiresAt }));
        const expected = {
          ...newKey("k1", { expiresAt }),
          revokedAt: undefined,
          lastUsedAt: undefined,
        };
        assert.deepEqual(created, expected);
        assert.deepEqual(await store.apiKeys.get("k1"), expected);
        assert.equal(await store.apiKeys.get("k2"), undefined);
      }));

    it("refuses a taken id as already_exists on key_id", () =>
      withStore(async (store) => {
        await store.apiKeys.create(newKey("k1"));
        await assert.rejects(store.apiKeys.create(newKey("k1")), (err: unknown) => {
          assert.ok(err instanceof StoreError);
          assert.equal(err.kind, "already_exists");
          assert.equal(err.field, "key_id");
          return true;
        });
      }));

    it("lists the newest first, up to the limit", () =>
      withStore(async (store) => {
        for (const [i, id] of ["a", "b", "c"].entries()) {
          await store.apiKeys.create(
            newKey(id, { createdAt: at(`2026-01-0${i + 1}T00:00:00.000Z`) }),
          );
        }
        const ids = async (limit: number) => (await store.apiKeys.list(limit)).map((key) => key.id);
        assert.deepEqual(await ids(10), ["c", "b", "a"]);
        assert.deepEqual(await ids(2), ["c", "b"]);
      }));

    it("revokes once: a second revocation keeps the first time; an unknown id is not_found", () =>
      withStore(async (store) => {
        await store.apiKeys.create(newKey("k1"));
        const first = at("2026-02-01T00:00:00.000Z");
        assert.deepEqual((await store.apiKeys.revoke("k1", first)).revokedAt, first);
        await store.apiKeys.revoke("k1", at("2026-03-01T00:00:00.000Z"));
        assert.deepEqual((await store.apiKeys.get("k1"))?.revokedAt, first);
        await assert.rejects(
          store.apiKeys.revoke("nope", first),
          (err: unknown) => err instanceof StoreError && err.kind === "not_found",
        );
      }));

    it("records the latest use only, and ignores unknown ids", () =>
      withStore(async (store) => {
        await store.apiKeys.create(newKey("k1"));
        const later = at("2026-02-01T00:02:00.000Z");
        await store.apiKeys.touch("k1", later);
        await store.apiKeys.touch("k1", at("2026-02-01T00:01:00.000Z"));
        assert.deepEqual((await store.apiKeys.get("k1"))?.lastUsedAt, later);
        await store.apiKeys.touch("nope", later);
      }));
  });
}
