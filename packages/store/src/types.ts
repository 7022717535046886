import type { CheckpointStatus, OrderEventType, OrderStatus } from "@keel/gen/order/v1/order_pb";
import type { UserStatus } from "@keel/gen/user/v1/user_pb";
import type { Subscription } from "./subscription.ts";

/** A stored user, without credentials. */
export interface UserRecord {
  id: bigint;
  username: string;
  email: string;
  status: UserStatus;
  tags: string[];
  metadata: Record<string, string>;
  /** What the user may do beyond their own resources, for example "admin"; not part of the API's User. */
  roles: string[];
  createdAt: Date;
  updatedAt: Date;
}

/** What it takes to create a user. Uniqueness of username and email is case-insensitive. */
export interface NewUser {
  username: string;
  email: string;
  status: UserStatus;
  tags: string[];
  passwordHash: string;
}

/** The fields of a user that can change; an absent field is left as it is. */
export interface UserPatch {
  username?: string;
  email?: string;
  status?: UserStatus;
  tags?: string[];
  metadata?: Record<string, string>;
}

/** Something a user did or that happened to a user. */
export interface ActivityRecord {
  id: bigint;
  userId: bigint;
  action: string;
  details: Record<string, string>;
  createdAt: Date;
}

/** A user's status as it changed, sent to the followers of that user. */
export interface StatusEvent {
  userId: bigint;
  status: UserStatus;
  at: Date;
  /** Who made the change (for example one SyncUserStatus stream), so that it gets no echo. */
  origin: string | undefined;
}

/** A refresh token as the store keeps it: its id, never the token itself. */
export interface RefreshTokenRecord {
  jti: string;
  familyId: string;
  userId: bigint;
  expiresAt: Date;
}

/** The outcome of presenting a refresh token for rotation. */
export type RotateOutcome =
  | { kind: "rotated"; userId: bigint }
  /** Unknown to the store, or already expired. */
  | { kind: "invalid" }
  /** Presented after it was already rotated or revoked: its whole family is now revoked. */
  | { kind: "reused"; userId: bigint };

export interface ListUsersQuery {
  limit: number;
  /** Only users with an id greater than this (keyset pagination). */
  afterId?: bigint;
  status?: UserStatus;
}

export interface ListActivitiesQuery {
  /** Only activities recorded at or after this time. */
  since?: Date;
  /** Only activities with an id greater than this. */
  afterId?: bigint;
  limit: number;
}

export interface UserRepository {
  /** Creates a user and records `user.created`. Throws `already_exists` naming the field. */
  create(user: NewUser): Promise<UserRecord>;
  get(id: bigint): Promise<UserRecord | undefined>;
  /**
   * Throws `already_exists` naming the field, as `create` would, when the username or email is
   * taken (case-insensitively): a check that costs a lookup, made before an expensive step such as
   * hashing a password. `create` still enforces uniqueness.
   */
  checkAvailable(username: string, email: string): Promise<void>;
  /** Looks a user up by username (case-insensitive), with the password hash. */
  findCredentials(
    username: string,
  ): Promise<{ user: UserRecord; passwordHash: string } | undefined>;
  list(query: ListUsersQuery): Promise<UserRecord[]>;
  /**
   * Applies a patch in one transaction, records `user.updated` for changed fields and
   * `user.status_changed` for a changed status, and announces a status change to followers.
   * Throws `not_found`, or `already_exists` naming the field.
   */
  update(id: bigint, patch: UserPatch, origin?: string): Promise<UserRecord>;
  /** Replaces a user's roles (an administrative act: no activity is recorded). */
  setRoles(id: bigint, roles: readonly string[]): Promise<UserRecord>;
}

export interface ActivityRepository {
  record(userId: bigint, action: string, details: Record<string, string>): Promise<ActivityRecord>;
  list(userId: bigint, query: ListActivitiesQuery): Promise<ActivityRecord[]>;
}

export interface RefreshTokenRepository {
  create(token: RefreshTokenRecord): Promise<void>;
  /**
   * Revokes `jti` and stores `next` in its place, atomically: of two concurrent rotations of one
   * token, exactly one succeeds. A token presented again after rotation revokes its family.
   */
  rotate(jti: string, next: RefreshTokenRecord, now: Date): Promise<RotateOutcome>;
  /** Revokes every token of a family (one login and its rotations). */
  revokeFamily(familyId: string): Promise<void>;
  /**
   * Whether a login (a family) can still be refreshed: one of its tokens is neither revoked nor
   * expired at `now`. False once the family was revoked, for example because a token was reused.
   */
  familyActive(familyId: string, now: Date): Promise<boolean>;
}

/** A line of an order. Money is in minor units of the order's currency. */
export interface OrderItemRecord {
  sku: string;
  name: string;
  quantity: number;
  unitPriceMinor: bigint;
}

export interface PaymentRecord {
  id: bigint;
  amountMinor: bigint;
  currency: string;
  idempotencyKey: string;
  paidAt: Date;
}

export interface CheckpointRecord {
  location: string;
  status: CheckpointStatus;
  time: Date;
  note: string;
}

export interface ShipmentRecord {
  carrier: string;
  trackingNumber: string;
  shippedAt: Date;
  deliveredAt: Date | undefined;
  checkpoints: CheckpointRecord[];
}

export interface OrderRecord {
  id: bigint;
  userId: bigint;
  status: OrderStatus;
  currency: string;
  items: OrderItemRecord[];
  totalMinor: bigint;
  createdAt: Date;
  updatedAt: Date;
  payment: PaymentRecord | undefined;
  shipment: ShipmentRecord | undefined;
  cancelReason: string;
}

/** Something that happened to an order, in the order it happened. */
export interface OrderEventRecord {
  id: bigint;
  orderId: bigint;
  type: OrderEventType;
  /** The order's status after the event. */
  status: OrderStatus;
  at: Date;
  checkpoint: CheckpointRecord | undefined;
  reason: string;
}

export interface NewOrder {
  userId: bigint;
  currency: string;
  items: OrderItemRecord[];
  /** A key the client retries with; unique per user. */
  idempotencyKey?: string;
  /** What the request said, so that a key reused for another request is recognised. */
  fingerprint?: string;
}

export interface ListOrdersQuery {
  userId: bigint;
  status?: OrderStatus;
  afterId?: bigint;
  limit: number;
}

export interface OrderRepository {
  /**
   * Creates an order with its items and a CREATED event in one transaction. With an idempotency
   * key already used by the user, returns that order (`created: false`) when the fingerprint
   * matches and throws `already_exists` (field `idempotency_key`) when it does not.
   */
  create(order: NewOrder): Promise<{ order: OrderRecord; created: boolean }>;
  get(id: bigint): Promise<OrderRecord | undefined>;
  list(query: ListOrdersQuery): Promise<OrderRecord[]>;
  /** The transitions below throw `not_found`, or `failed_precondition` naming the current status. */
  cancel(id: bigint, reason: string): Promise<OrderRecord>;
  /**
   * Records the payment and moves the order to PAID, in one transaction. A key this order was
   * already paid with returns that payment (`created: false`) whatever the order's status now.
   */
  pay(
    id: bigint,
    payment: { amountMinor: bigint; currency: string; idempotencyKey: string },
  ): Promise<{ order: OrderRecord; payment: PaymentRecord; created: boolean }>;
  ship(id: bigint, shipment: { carrier: string; trackingNumber: string }): Promise<OrderRecord>;
  /** Adds a checkpoint to a SHIPPED order; a DELIVERED checkpoint delivers it. */
  addCheckpoint(id: bigint, checkpoint: CheckpointRecord): Promise<OrderRecord>;
  /** The order's events after `afterId`, oldest first. */
  events(orderId: bigint, query: { afterId?: bigint; limit: number }): Promise<OrderEventRecord[]>;
}

/** A live feed of store events for one subscriber. */
export interface EventBus {
  /** Activities of `userId` recorded from now on. */
  activities(userId: bigint, options: SubscribeOptions): Subscription<ActivityRecord>;
  /** Events of one order from now on. */
  orderEvents(orderId: bigint, options: SubscribeOptions): Subscription<OrderEventRecord>;
  /** Status changes of the users followed through `follow` on the returned subscription. */
  statuses(options: SubscribeOptions & { origin?: string }): StatusSubscription;
}

export interface SubscribeOptions {
  /** Ends the subscription when aborted. */
  signal?: AbortSignal;
  /** Events kept for a subscriber that reads slower than they arrive; default 1024. */
  bufferSize?: number;
}

export interface StatusSubscription extends Subscription<StatusEvent> {
  follow(userId: bigint): void;
}

/** An API key as stored: never the key, only its keyed hash. */
export interface ApiKeyRecord {
  /** The public id, unique; the key names it, so that the record is found without scanning. */
  id: string;
  name: string;
  roles: string[];
  /** The key's HMAC-SHA256 with the server's API key secret, hex. */
  hash: string;
  createdAt: Date;
  /** The subject of who created it. */
  createdBy: string;
  expiresAt: Date | undefined;
  revokedAt: Date | undefined;
  lastUsedAt: Date | undefined;
}

export type NewApiKey = Omit<ApiKeyRecord, "revokedAt" | "lastUsedAt">;

export interface ApiKeyRepository {
  /** Stores a new key; an id already taken throws `already_exists` (field `key_id`). */
  create(key: NewApiKey): Promise<ApiKeyRecord>;
  get(id: string): Promise<ApiKeyRecord | undefined>;
  /** The newest `limit` keys first, revoked and expired ones included. */
  list(limit: number): Promise<ApiKeyRecord[]>;
  /** Marks the key revoked at `at` (a revoked key keeps its first time); `not_found` if none. */
  revoke(id: string, at: Date): Promise<ApiKeyRecord>;
  /** Records a use at `at`, unless a later one is recorded; an unknown id changes nothing. */
  touch(id: string, at: Date): Promise<void>;
}

/** The persistence of keel. Implementations: SQLite (embedded), PostgreSQL (many instances). */
export interface Store {
  readonly users: UserRepository;
  readonly activities: ActivityRepository;
  readonly refreshTokens: RefreshTokenRepository;
  readonly orders: OrderRepository;
  readonly apiKeys: ApiKeyRepository;
  readonly events: EventBus;
  /** Resolves when the database answers; rejects with `unavailable` when it does not. */
  ping(): Promise<void>;
  close(): Promise<void>;
  /**
   * Counters of a store that talks to a database server over a connection pool (PostgreSQL), for
   * metrics; undefined for the embedded store.
   */
  stats?(): StoreStats;
}

/** What a pooled store has done so far, and its pool right now. */
export interface StoreStats {
  /** Statements sent so far (BEGIN and COMMIT included): round trips to the database. */
  queries: number;
  /** Calls so far that found every connection of the pool busy, and so waited for one. */
  poolExhausted: number;
  /** Connections open now, idle ones included. */
  poolTotal: number;
  /** Open connections no call holds now. */
  poolIdle: number;
  /** Queries waiting for a connection now. */
  poolWaiting: number;
}
