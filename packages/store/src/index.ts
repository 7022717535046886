export type { EventRelay } from "./local-event-bus.ts";
export { LocalEventBus } from "./local-event-bus.ts";
export { orderStatusName } from "./order-rules.ts";
export type { PostgresStoreOptions } from "./pg/pg-store.ts";
export { openPostgresStore } from "./pg/pg-store.ts";
export type { PostgresTokenBuckets, PostgresTokenBucketsOptions } from "./pg/pg-token-buckets.ts";
export { openPostgresTokenBuckets } from "./pg/pg-token-buckets.ts";
export type { SqliteCopyResult } from "./sqlite/sqlite-backup.ts";
export { backupSqlite, restoreSqlite } from "./sqlite/sqlite-backup.ts";
export type { SqliteStoreOptions } from "./sqlite/sqlite-store.ts";
export { openSqliteStore } from "./sqlite/sqlite-store.ts";
export type { StoreErrorKind } from "./store-error.ts";
export { StoreError } from "./store-error.ts";
export { Subscription } from "./subscription.ts";
export type {
  ActivityRecord,
  ActivityRepository,
  ApiKeyRecord,
  ApiKeyRepository,
  CheckpointRecord,
  EventBus,
  ListActivitiesQuery,
  ListOrdersQuery,
  ListUsersQuery,
  NewApiKey,
  NewOrder,
  NewUser,
  OrderEventRecord,
  OrderItemRecord,
  OrderRecord,
  OrderRepository,
  PaymentRecord,
  RefreshTokenRecord,
  RefreshTokenRepository,
  RotateOutcome,
  ShipmentRecord,
  StatusEvent,
  StatusSubscription,
  Store,
  StoreStats,
  SubscribeOptions,
  UserPatch,
  UserRecord,
  UserRepository,
} from "./types.ts";
export { statusName } from "./user-change.ts";
