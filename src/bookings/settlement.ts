// What a provider is owed and was paid: its payable account's statement, and a settlement report
// per period (CSV) that operators pay out from. Each line is one ledger transaction that touched
// the provider's payable: a released visit (gross, commission, net), a late-cancel fee, a payout.
import type { Executor } from "../db/database";
import { notFound } from "../errors";
import type { Actor } from "../http/context";
import { csvCell } from "../http/csv";
import { accounts, balanceOf } from "../ledger/ledger";
import { isProviderAdmin } from "../providers/providers.repository";

export interface SettlementLine {
  at: string;
  transactionId: string;
  kind: string;
  description: string;
  visitId: string | null;
  gross: number;
  commission: number;
  net: number;
}

async function authorizeProviderMoney(db: Executor, actor: Actor, providerId: string) {
  if (actor.roles.includes("operator")) return;
  if (!(await isProviderAdmin(db, providerId, actor.userId))) throw notFound("the provider");
}

export async function settlement(
  db: Executor,
  actor: Actor,
  providerId: string,
  from: string,
  to: string,
) {
  await authorizeProviderMoney(db, actor, providerId);
  const payable = accounts.payable(providerId).id;
  const touched = db
    .selectFrom("ledger_entries")
    .select("transaction_id")
    .where("account_id", "=", payable)
    .where("created_at", ">=", from)
    .where("created_at", "<", to);
  const rows = await db
    .selectFrom("ledger_entries as e")
    .innerJoin("ledger_transactions as t", "t.id", "e.transaction_id")
    .innerJoin("ledger_accounts as a", "a.id", "e.account_id")
    .select([
      "t.id",
      "t.kind",
      "t.description",
      "t.created_at",
      "t.reference_type",
      "t.reference_id",
      "e.account_id",
      "e.amount",
      "a.kind as account_kind",
    ])
    .where("t.id", "in", touched)
    .orderBy("t.created_at")
    .orderBy("t.id")
    .execute();
  const lines = new Map<string, SettlementLine>();
  for (const r of rows) {
    const line = lines.get(r.id) ?? {
      at: r.created_at,
      transactionId: r.id,
      kind: r.kind,
      description: r.description,
      visitId: r.reference_type === "visit" ? r.reference_id : null,
      gross: 0,
      commission: 0,
      net: 0,
    };
    const amount = Number(r.amount);
    if (r.account_id === payable) line.net += amount;
    else if (r.account_kind === "revenue") line.commission += amount;
    lines.set(r.id, line);
  }
  const items = [...lines.values()].map((l) => ({
    ...l,
    gross: l.net > 0 ? l.net + l.commission : 0,
  }));
  const earned = items.filter((l) => l.net > 0).reduce((s, l) => s + l.net, 0);
  const paidOut = -items.filter((l) => l.net < 0).reduce((s, l) => s + l.net, 0);
  return {
    providerId,
    from,
    to,
    items,
    totals: {
      gross: items.reduce((s, l) => s + l.gross, 0),
      commission: items.reduce((s, l) => s + l.commission, 0),
      earned,
      paidOut,
    },
    balanceNow: await balanceOf(db, payable),
  };
}

export function settlementCsv(report: Awaited<ReturnType<typeof settlement>>): string {
  const header = [
    "date",
    "transaction",
    "kind",
    "visit",
    "description",
    "gross",
    "commission",
    "net",
  ];
  const lines = report.items.map((l) =>
    [l.at, l.transactionId, l.kind, l.visitId, l.description, l.gross, l.commission, l.net]
      .map(csvCell)
      .join(","),
  );
  const t = report.totals;
  lines.push(
    ["total", "", "", "", `paid out ${t.paidOut}`, t.gross, t.commission, t.earned]
      .map(csvCell)
      .join(","),
  );
  return `${[header.join(","), ...lines].join("\n")}\n`;
}
