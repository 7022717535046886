export {
  dropSchema,
  freshSchema,
  lockTable,
  openTestPostgresStore,
  postgresSkipReason,
  postgresUrl,
} from "./postgres.ts";
export { storeContract } from "./store-contract.ts";
