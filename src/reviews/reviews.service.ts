// Ratings and reviews. After a visit is verified (or released), a family member of the resident
// rates the provider 1-5 and, when the visit had a worker, the worker, with an optional comment:
// one review per visit. The provider's and the worker's running sums move in the same
// transaction, so the catalog's average is always that of the visible reviews. The provider's
// admin may reply once; an operator may hide an abusive review with a reason: it leaves the
// public list and the averages, the row stays as written and the audit log says who hid it.
import { authorizeResident } from "../access/access";
import { recordAudit } from "../audit/audit.service";
import type { VisitStatus } from "../bookings/bookings.table";
import { iso } from "../clock";
import type { Executor, Trx } from "../db/database";
import { AppError, forbidden, notFound } from "../errors";
import type { Actor } from "../http/context";
import { newId } from "../ids";
import { isProviderAdmin } from "../providers/providers.repository";
import { authorizeProvider, ratingOf } from "../providers/providers.service";
import type { RequestCtx } from "../request-ctx";
import type { ReviewRow } from "./reviews.table";

type Ctx = RequestCtx & { actor: Actor };

/** A visit can be rated once it was proven to have happened and was not given back. */
const RATEABLE: readonly VisitStatus[] = ["verified", "released"];

type ReviewWithService = ReviewRow & { service_title: string | null };

/** What every signed-in user may read; operators also see who wrote it and whether it is hidden. */
export function presentReview(r: ReviewWithService, full: boolean) {
  return {
    id: r.id,
    providerId: r.provider_id,
    serviceId: r.service_id,
    serviceTitle: r.service_title,
    providerRating: Number(r.provider_rating),
    workerRating: r.worker_rating === null ? null : Number(r.worker_rating),
    comment: r.comment,
    reply: r.reply === null ? null : { text: r.reply, at: r.replied_at },
    createdAt: r.created_at,
    ...(full
      ? {
          visitId: r.visit_id,
          residentId: r.resident_id,
          workerId: r.worker_id,
          authorId: r.author_id,
          hidden: r.hidden_at
            ? { at: r.hidden_at, by: r.hidden_by, reason: r.hidden_reason }
            : null,
        }
      : {}),
  };
}

function reviewQuery(db: Executor) {
  return db
    .selectFrom("reviews as r")
    .leftJoin("services as s", "s.id", "r.service_id")
    .selectAll("r")
    .select("s.title as service_title");
}

async function loadReview(db: Executor, reviewId: string): Promise<ReviewWithService> {
  const review = await reviewQuery(db).where("r.id", "=", reviewId).executeTakeFirst();
  if (!review) throw notFound("the review");
  return review;
}

/** Adds (sign 1) or takes back (sign -1) one rating of a worker. */
async function moveWorkerRating(
  trx: Trx,
  workerId: string,
  rating: number,
  sign: 1 | -1,
  now: Date,
) {
  await trx
    .insertInto("worker_ratings")
    .values({
      worker_id: workerId,
      rating_sum: sign * rating,
      rating_count: sign,
      updated_at: iso(now),
    })
    .onConflict((oc) =>
      oc.column("worker_id").doUpdateSet((eb) => ({
        rating_sum: eb("worker_ratings.rating_sum", "+", eb.ref("excluded.rating_sum")),
        rating_count: eb("worker_ratings.rating_count", "+", eb.ref("excluded.rating_count")),
        updated_at: eb.ref("excluded.updated_at"),
      })),
    )
    .execute();
}

async function moveProviderRating(trx: Trx, providerId: string, rating: number, sign: 1 | -1) {
  await trx
    .updateTable("providers")
    .set((eb) => ({
      rating_sum: eb("rating_sum", "+", sign * rating),
      rating_count: eb("rating_count", "+", sign),
    }))
    .where("id", "=", providerId)
    .execute();
}

export interface NewRating {
  provider: number;
  worker?: number | undefined;
  comment?: string | undefined;
}

/** The family rates a verified visit: once. */
export async function rateVisit(trx: Trx, ctx: Ctx, visitId: string, input: NewRating) {
  const visit = await trx
    .selectFrom("visits")
    .select(["id", "resident_id", "provider_id", "service_id", "worker_id", "status"])
    .where("id", "=", visitId)
    .executeTakeFirst();
  if (!visit) throw notFound("the visit");
  await authorizeResident(trx, ctx.actor, visit.resident_id, "rateVisits");
  if (!RATEABLE.includes(visit.status)) {
    throw new AppError(
      "invalid_state",
      visit.status === "scheduled"
        ? "a visit can be rated once it has been verified"
        : `a ${visit.status} visit cannot be rated`,
    );
  }
  if (input.worker !== undefined && !visit.worker_id) {
    throw new AppError("validation_failed", "this visit had no worker to rate", {
      issues: [{ path: "worker", message: "the visit had no worker" }],
    });
  }
  const review: ReviewRow = {
    id: newId(),
    visit_id: visit.id,
    resident_id: visit.resident_id,
    provider_id: visit.provider_id,
    service_id: visit.service_id,
    worker_id: visit.worker_id,
    author_id: ctx.actor.userId,
    provider_rating: input.provider,
    worker_rating: input.worker ?? null,
    comment: input.comment ?? null,
    reply: null,
    replied_at: null,
    replied_by: null,
    hidden_at: null,
    hidden_by: null,
    hidden_reason: null,
    created_at: iso(ctx.now),
    updated_at: iso(ctx.now),
  };
  const inserted = await trx
    .insertInto("reviews")
    .values(review)
    .onConflict((oc) => oc.column("visit_id").doNothing())
    .executeTakeFirst();
  if (Number(inserted.numInsertedOrUpdatedRows ?? 0n) === 0) {
    throw new AppError("already_exists", "this visit has already been rated");
  }
  await moveProviderRating(trx, visit.provider_id, input.provider, 1);
  if (review.worker_id && review.worker_rating !== null) {
    await moveWorkerRating(trx, review.worker_id, review.worker_rating, 1, ctx.now);
  }
  await recordAudit(
    trx,
    {
      actorUserId: ctx.actor.userId,
      action: "review.create",
      entityType: "review",
      entityId: review.id,
      residentId: visit.resident_id,
      requestId: ctx.requestId,
      details: { visitId: visit.id, providerId: visit.provider_id, workerId: visit.worker_id },
    },
    ctx.now,
  );
  return presentReview(
    { ...review, service_title: await serviceTitle(trx, visit.service_id) },
    false,
  );
}

async function serviceTitle(db: Executor, serviceId: string) {
  const s = await db
    .selectFrom("services")
    .select("title")
    .where("id", "=", serviceId)
    .executeTakeFirst();
  return s?.title ?? null;
}

/**
 * A provider's visible reviews, newest first, for any signed-in user who may see the provider;
 * operators may ask for the hidden ones too.
 */
export async function providerReviews(
  db: Executor,
  ctx: Ctx,
  providerId: string,
  page: { limit: number; before?: string | undefined; includeHidden?: boolean | undefined },
) {
  const { provider } = await authorizeProvider(db, ctx.actor, providerId, "view");
  const operator = ctx.actor.roles.includes("operator");
  if (page.includeHidden && !operator) throw forbidden("only operators see hidden reviews");
  let q = reviewQuery(db).where("r.provider_id", "=", providerId);
  if (!page.includeHidden) q = q.where("r.hidden_at", "is", null);
  // Ids are time-ordered (UUIDv7): newest first is id order, and the cursor is the last id.
  if (page.before) q = q.where("r.id", "<", page.before);
  const rows = await q
    .orderBy("r.id", "desc")
    .limit(page.limit + 1)
    .execute();
  const items = rows.slice(0, page.limit);
  return {
    providerId,
    rating: ratingOf(provider),
    items: items.map((r) => presentReview(r, operator)),
    nextCursor: rows.length > page.limit ? (items.at(-1)?.id ?? null) : null,
  };
}

/** The provider's admin answers a review, once. */
export async function replyToReview(trx: Trx, ctx: Ctx, reviewId: string, text: string) {
  const review = await loadReview(trx, reviewId);
  // A hidden review is gone from every public view, its reply box included.
  if (review.hidden_at && !ctx.actor.roles.includes("operator")) throw notFound("the review");
  if (
    !ctx.actor.roles.includes("provider_admin") ||
    !(await isProviderAdmin(trx, review.provider_id, ctx.actor.userId))
  ) {
    throw forbidden("only the reviewed provider's admins can reply to a review");
  }
  if (review.hidden_at) throw new AppError("invalid_state", "this review was hidden");
  const updated = await trx
    .updateTable("reviews")
    .set({
      reply: text,
      replied_at: iso(ctx.now),
      replied_by: ctx.actor.userId,
      updated_at: iso(ctx.now),
    })
    .where("id", "=", reviewId)
    .where("reply", "is", null)
    .executeTakeFirst();
  if (Number(updated.numUpdatedRows) === 0) {
    throw new AppError("invalid_state", "the provider has already replied to this review");
  }
  await recordAudit(
    trx,
    {
      actorUserId: ctx.actor.userId,
      action: "review.reply",
      entityType: "review",
      entityId: reviewId,
      residentId: review.resident_id,
      requestId: ctx.requestId,
      details: { providerId: review.provider_id },
    },
    ctx.now,
  );
  return presentReview(await loadReview(trx, reviewId), false);
}

/**
 * An operator hides an abusive review: it leaves the public list and the provider's and worker's
 * averages; the row keeps what was written, and who hid it and why.
 */
export async function hideReview(trx: Trx, ctx: Ctx, reviewId: string, reason: string) {
  if (!ctx.actor.roles.includes("operator")) throw forbidden("only operators hide reviews");
  const review = await loadReview(trx, reviewId);
  const updated = await trx
    .updateTable("reviews")
    .set({
      hidden_at: iso(ctx.now),
      hidden_by: ctx.actor.userId,
      hidden_reason: reason,
      updated_at: iso(ctx.now),
    })
    .where("id", "=", reviewId)
    .where("hidden_at", "is", null)
    .executeTakeFirst();
  if (Number(updated.numUpdatedRows) === 0) {
    throw new AppError("invalid_state", "this review is already hidden");
  }
  await moveProviderRating(trx, review.provider_id, review.provider_rating, -1);
  if (review.worker_id && review.worker_rating !== null) {
    await moveWorkerRating(trx, review.worker_id, review.worker_rating, -1, ctx.now);
  }
  await recordAudit(
    trx,
    {
      actorUserId: ctx.actor.userId,
      action: "review.hide",
      entityType: "review",
      entityId: reviewId,
      residentId: review.resident_id,
      requestId: ctx.requestId,
      details: {
        providerId: review.provider_id,
        workerId: review.worker_id,
        authorId: review.author_id,
        providerRating: review.provider_rating,
        workerRating: review.worker_rating,
      },
    },
    ctx.now,
  );
  return presentReview(await loadReview(trx, reviewId), true);
}

/**
 * A worker's average over visible reviews: for anyone who may see the worker's provider, once the
 * worker is verified (its provider's admins and operators always).
 */
export async function workerRating(db: Executor, ctx: Ctx, workerId: string) {
  const worker = await db
    .selectFrom("workers")
    .select(["id", "provider_id", "status"])
    .where("id", "=", workerId)
    .executeTakeFirst();
  if (!worker) throw notFound("the worker");
  const { relations } = await authorizeProvider(db, ctx.actor, worker.provider_id, "view");
  if (relations.length === 0 && worker.status !== "verified") throw notFound("the worker");
  const row = await db
    .selectFrom("worker_ratings")
    .select(["rating_sum", "rating_count"])
    .where("worker_id", "=", workerId)
    .executeTakeFirst();
  return {
    workerId,
    providerId: worker.provider_id,
    rating: ratingOf(row ?? { rating_sum: 0, rating_count: 0 }),
  };
}
