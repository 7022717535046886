/** The methods `keel perf` can load, as named on the command line. */
export const perfMethods = ["GetUser", "ListUsers", "CreateUser", "TrackOrder"] as const;

export type PerfMethod = (typeof perfMethods)[number];
