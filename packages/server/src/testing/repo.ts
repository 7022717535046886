import { readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

/** The repository's root directory. */
export const root = fileURLToPath(new URL("../../../../", import.meta.url));

/** A file of the repository, by its path from the root, as text. */
export const read = (...path: string[]) => readFileSync(join(root, ...path), "utf8");
