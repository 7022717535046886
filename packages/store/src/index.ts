export { LocalEventBus } from "./local-event-bus.ts";
export type { SqliteStoreOptions } from "./sqlite/sqlite-store.ts";
export { openSqliteStore } from "./sqlite/sqlite-store.ts";
export type { StoreErrorKind } from "./store-error.ts";
export { StoreError } from "./store-error.ts";
export { Subscription } from "./subscription.ts";
export type {
  ActivityRecord,
  ActivityRepository,
  EventBus,
  ListActivitiesQuery,
  ListUsersQuery,
  NewUser,
  RefreshTokenRecord,
  RefreshTokenRepository,
  RotateOutcome,
  StatusEvent,
  StatusSubscription,
  Store,
  SubscribeOptions,
  UserPatch,
  UserRecord,
  UserRepository,
} from "./types.ts";
export { statusName } from "./user-change.ts";
