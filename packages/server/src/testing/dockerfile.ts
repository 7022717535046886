import { spawn } from "node:child_process";
import { once } from "node:events";
import { read } from "./repo.ts";

export interface Instruction {
  keyword: string;
  args: string;
  /** 0 before the first FROM, then 1, 2, … */
  stage: number;
}

/** The Dockerfile's instructions, continuation lines joined and comments dropped. */
function parseDockerfile(text: string): Instruction[] {
  const out: Instruction[] = [];
  let stage = 0;
  let current = "";
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (line.startsWith("#") || (line === "" && current === "")) continue;
    if (line.endsWith("\\")) {
      current += `${line.slice(0, -1).trim()} `;
      continue;
    }
    current += line;
    const [, keyword = "", args = ""] = /^(\S+)\s*(.*)$/.exec(current) ?? [];
    if (keyword.toUpperCase() === "FROM") stage++;
    out.push({ keyword: keyword.toUpperCase(), args, stage });
    current = "";
  }
  return out;
}

/** deploy/Dockerfile, parsed. */
export const instructions = parseDockerfile(read("deploy", "Dockerfile"));
/** Its FROM instructions, one per stage. */
export const froms = instructions.filter((i) => i.keyword === "FROM");
/** The number of the last stage, the runtime image. */
export const runtime = froms.length;
/** The arguments of each `keyword` instruction of a stage. */
export const inStage = (stage: number, keyword: string) =>
  instructions.filter((i) => i.stage === stage && i.keyword === keyword).map((i) => i.args);

/** The runtime stage's HEALTHCHECK command, in exec form. */
export function healthcheck(): string[] {
  const check = /^(?:--\S+\s+)*CMD (\[.*\])$/.exec(inStage(runtime, "HEALTHCHECK")[0] ?? "");
  return JSON.parse(check?.[1] ?? "[]") as string[];
}

/** Runs the HEALTHCHECK's script against an admin port on 127.0.0.1; its exit code. */
export async function runHealthcheck(adminPort: number): Promise<number> {
  const script = (healthcheck()[2] ?? "").replace(":9091/", `:${adminPort}/`);
  const child = spawn(process.execPath, ["-e", script], { stdio: "ignore" });
  const [code] = (await once(child, "exit")) as [number];
  return code;
}
