import type { DatabaseSync, StatementSync } from "node:sqlite";

const runners = ["run", "get", "all", "iterate"] as const;

/**
 * Calls `onQuery` with the SQL of every statement `db` runs from now on, before it runs: those
 * prepared after this call and every `exec`. Without an observer nothing is wrapped, so the hot
 * path pays nothing for this.
 */
export function observeStatements(db: DatabaseSync, onQuery: (sql: string) => void): void {
  const prepare = db.prepare.bind(db);
  const exec = db.exec.bind(db);
  db.prepare = (sql: string) => {
    const statement: StatementSync = prepare(sql);
    for (const name of runners) {
      const runner = statement[name].bind(statement) as (...args: unknown[]) => unknown;
      Object.defineProperty(statement, name, {
        value: (...args: unknown[]) => {
          onQuery(sql);
          return runner(...args);
        },
      });
    }
    return statement;
  };
  db.exec = (sql: string) => {
    onQuery(sql);
    exec(sql);
  };
}
