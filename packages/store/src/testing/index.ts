export {
  dropSchema,
  freshSchema,
  openTestPostgresStore,
  postgresSkipReason,
  postgresUrl,
} from "./postgres.ts";
export { storeContract } from "./store-contract.ts";
