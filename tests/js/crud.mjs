// postgrest-js (npm @supabase/postgrest-js, pinned in package-lock.json), unmodified,
// against a gateway's /api: `node tests/js/crud.mjs http://127.0.0.1:PORT/api`.
//
// tests/test_e2e_postgrest_js.py starts the gateway over tests/crud_schema.py's items
// table and runs this. Every expectation is what the client gets from real PostgREST.
// Each check starts from the same five rows (rpc reset_items), prints "ok NAME" or
// "FAIL NAME: why", and the script ends with "N passed, M failed" (exit code 1 if any failed).

import assert from "node:assert/strict";
import { PostgrestClient } from "@supabase/postgrest-js";

const url = process.argv[2];
if (!url) {
  console.error("usage: node tests/js/crud.mjs http://127.0.0.1:PORT/api");
  process.exit(2);
}
// No retries: a 503 should fail at once, not after seconds of back-off.
const db = new PostgrestClient(url, { retry: false });
const items = () => db.from("items");

const SEED_SKUS = ["a-1", "b-2", "c-3", "d-4", "e-5"];

/** The response of `query`, which must have succeeded with `status` (or one of several). */
async function ok(query, status = 200) {
  const response = await query;
  assert.equal(response.error, null, `expected ${status}, got ${response.status} ${JSON.stringify(response.error)}`);
  assert.ok([status].flat().includes(response.status), `status ${response.status}, not ${status}: ${JSON.stringify(response.data)}`);
  return response;
}

/** The error of `query`, which must have failed with `status`, in PostgREST's shape. */
async function failed(query, status) {
  const response = await query;
  assert.notEqual(response.error, null, `expected ${status}, got ${response.status} ${JSON.stringify(response.data)}`);
  assert.equal(response.status, status, JSON.stringify(response.error));
  assert.deepEqual(Object.keys(response.error).sort(), ["code", "details", "hint", "message"]);
  assert.equal(response.data, null);
  return response.error;
}

/** The ids `select=id` returns with the filters `where` adds, ordered by id. */
async function ids(where) {
  const { data } = await ok(where(items().select("id")).order("id"));
  return data.map((row) => row.id);
}

async function skus() {
  const { data } = await ok(items().select("sku").order("sku"));
  return data.map((row) => row.sku);
}

const FILTERS = [
  ["eq", (q) => q.eq("sku", "b-2"), [2]],
  ["neq", (q) => q.neq("qty", 0), [1, 3, 4]],
  ["gt", (q) => q.gt("price", 1.5), [4, 5]],
  ["gte", (q) => q.gte("price", 1.5), [1, 4, 5]],
  ["lt", (q) => q.lt("price", 1.5), [2]],
  ["lte", (q) => q.lte("price", 1.5), [1, 2]],
  ["like", (q) => q.like("name", "*err*"), [3, 5]],
  ["like is case-sensitive", (q) => q.like("name", "c*"), []],
  ["ilike", (q) => q.ilike("name", "c*"), [3]],
  ["match", (q) => q.regexMatch("name", "^[A-C]"), [1, 3]],
  ["imatch", (q) => q.regexIMatch("name", "^[a-c]"), [1, 2, 3]],
  ["in", (q) => q.in("id", [1, 3]), [1, 3]],
  // postgrest-js quotes a value with , ( or ); a double quote inside an unquoted one stays literal.
  ["in, quoted values", (q) => q.in("name", ["Cherry, sour", "date (dried)", 'Elder "berry"']), [3, 4, 5]],
  ["is null", (q) => q.is("price", null), [3]],
  ["is not_null", (q) => q.filter("price", "is", "not_null"), [1, 2, 4, 5]],
  ["is true", (q) => q.is("active", true), [1, 4]],
  ["is false", (q) => q.is("active", false), [2, 5]],
  ["is unknown", (q) => q.filter("active", "is", "unknown"), [3]],
  ["isdistinct", (q) => q.isDistinct("active", true), [2, 3, 5]],
  ["not eq", (q) => q.not("qty", "eq", 0), [1, 3, 4]],
  ["not in", (q) => q.notIn("id", [1, 2, 3]), [4, 5]],
  ["not is null", (q) => q.not("price", "is", null), [1, 2, 4, 5]],
  ["not like", (q) => q.not("name", "like", "*a*"), [1, 3, 5]],
  ["match() of columns", (q) => q.match({ active: true, qty: 10 }), [1]],
  ["filters add up", (q) => q.gt("qty", 0).lt("price", 2), [1]],
  ["json path ->> (text)", (q) => q.eq("meta->>color", "red"), [1, 3]],
  ["json path -> (jsonb)", (q) => q.eq("meta->color", '"red"'), [1, 3]],
  ["json path, nested", (q) => q.gt("meta->size->w", 2), [1]],
  ["or", (q) => q.or("qty.eq.0,price.is.null"), [2, 3, 5]],
  ["or, quoted values", (q) => q.or('name.eq."Cherry, sour",name.eq."date (dried)"'), [3, 4]],
  ["or with in", (q) => q.or("id.in.(1,2),sku.eq.e-5"), [1, 2, 5]],
  ["or with a json path", (q) => q.or("meta->>color.eq.black,id.eq.4"), [4, 5]],
  ["or with and", (q) => q.or("sku.eq.e-5,and(qty.gt.0,price.lt.2)"), [1, 5]],
  [
    "nested and/or/not",
    (q) => q.or("and(active.is.true,qty.not.lt.8),and(active.is.false,or(price.lt.1,name.like.*berry*))"),
    [1, 2, 5],
  ],
  ["not.and inside or", (q) => q.or("not.and(qty.gt.0,active.is.true),id.eq.1"), [1, 2, 3, 5]],
];
// (postgrest-js has no call for a negated group, not.or=(...); tests/test_e2e_postgrest_py.py
// covers it through postgrest-py's not_.or_.)

const checks = [];
const check = (name, fn) => checks.push([name, fn]);

check("select: columns, aliases, casts", async () => {
  const { data } = await ok(items().select("id, label:name, price::text, qty").lte("id", 2).order("id"));
  assert.deepEqual(data, [
    { id: 1, label: "Apple", price: "1.50", qty: 10 },
    { id: 2, label: "banana", price: "0.25", qty: 0 },
  ]);
});

check("select: json paths", async () => {
  const { data } = await ok(items().select("id,meta->>color,width:meta->size->w").order("id"));
  assert.deepEqual(data, [
    { id: 1, color: "red", width: 3 },
    { id: 2, color: "yellow", width: null },
    { id: 3, color: "red", width: null },
    { id: 4, color: null, width: null },
    { id: 5, color: "black", width: null },
  ]);
});

check("select: every column", async () => {
  const { data } = await ok(items().select().eq("id", 1));
  assert.deepEqual(data, [
    { id: 1, sku: "a-1", name: "Apple", price: 1.5, qty: 10, active: true, meta: { color: "red", size: { w: 3 } } },
  ]);
});

for (const [name, where, expected] of FILTERS) {
  check(`filter: ${name}`, async () => assert.deepEqual(await ids(where), expected));
}

check("order", async () => {
  const order = async (q) => (await ok(q)).data.map((row) => row.id);
  assert.deepEqual(await order(items().select("id").order("price")), [2, 1, 5, 4, 3]);
  assert.deepEqual(await order(items().select("id").order("price", { ascending: false, nullsFirst: false })), [4, 5, 1, 2, 3]);
  assert.deepEqual(await order(items().select("id").order("price", { ascending: false })), [3, 4, 5, 1, 2]);
  assert.deepEqual(
    await order(items().select("id").order("active", { nullsFirst: true }).order("id", { ascending: false })),
    [3, 5, 2, 4, 1],
  );
  assert.deepEqual(await order(items().select("id").order("meta->>color").order("id")), [5, 1, 3, 2, 4]);
});

check("limit, range, count", async () => {
  const order = async (q) => (await ok(q)).data.map((row) => row.id);
  assert.deepEqual(await order(items().select("id").order("id").limit(2)), [1, 2]);
  assert.deepEqual(await order(items().select("id").order("id").range(1, 3)), [2, 3, 4]);
  // With a total, a page that is not all of it is 206 Partial Content.
  const page = await ok(items().select("id", { count: "exact" }).order("id").range(0, 1), 206);
  assert.deepEqual([page.data.map((row) => row.id), page.count], [[1, 2], 5]);
  const filtered = await ok(items().select("id", { count: "exact" }).gt("qty", 0).limit(1), 206);
  assert.deepEqual([filtered.data.length, filtered.count], [1, 3]);
  const head = await ok(items().select("*", { count: "exact", head: true }));
  assert.deepEqual([head.data, head.count], [null, 5]);
  const planned = await ok(items().select("id", { count: "planned" }), [200, 206]); // 206 if it guesses more
  assert.ok(Number.isInteger(planned.count) && planned.count >= 0, `planned count ${planned.count}`);
});

check("single, maybeSingle", async () => {
  assert.deepEqual((await ok(items().select("id,sku").eq("id", 1).single())).data, { id: 1, sku: "a-1" });
  assert.equal((await failed(items().select("id").eq("id", 99).single(), 406)).code, "PGRST116");
  assert.equal((await failed(items().select("id").gt("id", 1).single(), 406)).code, "PGRST116");
  assert.deepEqual((await ok(items().select("id,sku").eq("id", 2).maybeSingle())).data, { id: 2, sku: "b-2" });
  assert.equal((await ok(items().select("id").eq("id", 99).maybeSingle())).data, null);
});

check("csv", async () => {
  const { data } = await ok(items().select("id,sku,name,price").in("id", [1, 2]).order("id").csv());
  assert.equal(data, "id,sku,name,price\n1,a-1,Apple,1.50\n2,b-2,banana,0.25");
});

check("insert one: 201, no body unless asked", async () => {
  const quiet = await ok(items().insert({ sku: "f-6", name: "Fig" }), 201);
  assert.equal(quiet.data, null);
  const { data } = await ok(items().insert({ sku: "g-7", name: "Grape", price: 4.1, meta: { color: "green" } }).select(), 201);
  assert.deepEqual(data, [{ id: 7, sku: "g-7", name: "Grape", price: 4.1, qty: 0, active: null, meta: { color: "green" } }]);
});

check("insert many: one statement, all or nothing", async () => {
  const rows = [{ sku: "h-8", name: "Honeydew", qty: 3 }, { sku: "i-9", name: "Ivy gourd", qty: 1 }];
  const { data } = await ok(items().insert(rows).select("sku,qty"), 201);
  assert.deepEqual(data, [{ sku: "h-8", qty: 3 }, { sku: "i-9", qty: 1 }]);
  const uneven = [{ sku: "j-10", name: "Jackfruit" }, { sku: "k-11", name: "Kiwi", qty: 2 }];
  assert.equal((await failed(items().insert(uneven), 400)).code, "23502"); // columns=: a missing qty is null
  const filled = await ok(items().insert(uneven, { defaultToNull: false }).select("sku,qty"), 201);
  assert.deepEqual(filled.data, [{ sku: "j-10", qty: 0 }, { sku: "k-11", qty: 2 }]);
  const error = await failed(items().insert([{ sku: "l-12", name: "Lime" }, { sku: "a-1", name: "again" }]), 409);
  assert.equal(error.code, "23505");
  assert.deepEqual(await skus(), [...SEED_SKUS, "h-8", "i-9", "j-10", "k-11"].sort());
});

check("upsert: merge-duplicates, on_conflict, ignore-duplicates", async () => {
  // 200 where merge-duplicates inserted no row, 201 where it inserted one (as PostgREST).
  const merged = await ok(items().upsert({ sku: "a-1", name: "Apple (green)", price: 1.75 }, { onConflict: "sku" }).select(), 200);
  assert.deepEqual(merged.data, [
    { id: 1, sku: "a-1", name: "Apple (green)", price: 1.75, qty: 10, active: true, meta: { color: "red", size: { w: 3 } } },
  ]);
  const byKey = await ok(items().upsert({ id: 2, sku: "b-2", name: "Banana" }).select("id,name"), 200);
  const mixed = await ok(items().upsert([{ sku: "b-2", name: "Banana" }, { sku: "n-14", name: "Nectarine" }], { onConflict: "sku" }), 201);
  assert.equal(mixed.data, null);
  assert.deepEqual(byKey.data, [{ id: 2, name: "Banana" }]);
  const ignored = await ok(
    items()
      .upsert([{ sku: "a-1", name: "not me" }, { sku: "m-13", name: "Mango" }], { onConflict: "sku", ignoreDuplicates: true })
      .select("sku,name"),
    201,
  );
  assert.deepEqual(ignored.data, [{ sku: "m-13", name: "Mango" }]);
  const { data } = await ok(items().select("sku,name").in("sku", ["a-1", "b-2", "m-13"]).order("sku"));
  assert.deepEqual(data, [
    { sku: "a-1", name: "Apple (green)" },
    { sku: "b-2", name: "Banana" },
    { sku: "m-13", name: "Mango" },
  ]);
  assert.deepEqual(await skus(), [...SEED_SKUS, "m-13", "n-14"]);
});

check("update by filter", async () => {
  const { data } = await ok(items().update({ active: true, meta: { color: "green" } }).eq("qty", 0).select("id,active,meta"));
  assert.deepEqual(
    data.sort((a, b) => a.id - b.id),
    [
      { id: 2, active: true, meta: { color: "green" } },
      { id: 5, active: true, meta: { color: "green" } },
    ],
  );
  const quiet = await ok(items().update({ qty: 1 }).is("price", null), 204);
  assert.equal(quiet.data, null);
  assert.deepEqual((await ok(items().update({ qty: 9 }).eq("id", 99).select())).data, []);
  assert.deepEqual((await ok(items().select("id,qty").in("id", [3, 5]).order("id"))).data, [
    { id: 3, qty: 1 },
    { id: 5, qty: 0 },
  ]);
});

check("writes: Prefer count=exact counts their rows", async () => {
  // Content-Range */2 (POST, DELETE), 0-1/2 (PATCH).
  const rows = [{ sku: "g-7", name: "Grape" }, { sku: "h-8", name: "Honeydew" }];
  assert.equal((await ok(items().insert(rows, { count: "exact" }), 201)).count, 2);
  assert.equal((await ok(items().update({ qty: 1 }, { count: "exact" }).gt("id", 5), 204)).count, 2);
  assert.equal((await ok(items().update({ qty: 2 }, { count: "exact" }).eq("qty", 0).select("id"))).count, 2);
  assert.equal((await ok(items().delete({ count: "exact" }).gt("id", 5), 204)).count, 2);
});

check("update and delete: order applies to the representation", async () => {
  const updated = await ok(items().update({ qty: 1 }).lt("id", 4).select("id").order("id", { ascending: false }));
  assert.deepEqual(updated.data, [{ id: 3 }, { id: 2 }, { id: 1 }]);
  const deleted = await ok(items().delete().gt("id", 2).select("id").order("id", { ascending: false }));
  assert.deepEqual(deleted.data, [{ id: 5 }, { id: 4 }, { id: 3 }]);
});

check("delete by filter", async () => {
  const { data } = await ok(items().delete().eq("sku", "e-5").select("id,name"));
  assert.deepEqual(data, [{ id: 5, name: 'Elder "berry"' }]);
  await ok(items().delete().or('id.eq.3,name.eq."date (dried)"'), 204);
  assert.deepEqual((await ok(items().delete().eq("id", 99).select())).data, []);
  assert.deepEqual(await skus(), ["a-1", "b-2"]);
});

check("update or delete without a filter is refused with a hint", async () => {
  for (const query of [items().update({ qty: 0 }), items().delete()]) {
    const error = await failed(query, 400);
    assert.ok(error.code && error.message && error.hint, JSON.stringify(error));
  }
  assert.deepEqual(await skus(), SEED_SKUS);
});

check("rpc", async () => {
  assert.equal((await ok(db.rpc("add", { a: 2, b: 3 }))).data, 5);
  assert.equal((await ok(db.rpc("add", { a: 40, b: 2 }, { get: true }))).data, 42);
  const cheap = await ok(db.rpc("cheaper_than", { max: 2 }));
  assert.deepEqual(cheap.data.map((row) => row.sku), ["a-1", "b-2"]);
  const restocked = await ok(db.rpc("restock", { amount: 4 }), 204);
  assert.equal(restocked.data, null);
  assert.deepEqual(await ids((q) => q.eq("qty", 4)), [2, 5]);
  assert.equal((await failed(db.rpc("nope"), 404)).code, "PGRST202");
  assert.equal((await failed(db.rpc("add", { a: 1 }), 404)).code, "PGRST202");
});

check("errors: PostgREST's codes and statuses", async () => {
  const duplicate = await failed(items().insert({ sku: "a-1", name: "again" }), 409);
  assert.equal(duplicate.code, "23505");
  assert.match(String(duplicate.details), /\(sku\)=\(a-1\)/);
  const missing = await failed(items().insert({ sku: "x-1" }), 400);
  assert.equal(missing.code, "23502");
  assert.equal((await failed(items().select("id").eq("qty", "ten"), 400)).code, "22P02");
  assert.equal((await failed(items().insert({ sku: "x-2", name: "x", nope: 1 }), 400)).code, "PGRST204");
  assert.equal((await failed(items().select("id").filter("qty", "eqq", "1"), 400)).code, "PGRST100");
  const unknown = await failed(db.from("nope").select(), 404);
  assert.equal(unknown.code, "PGRST205");
  assert.match(unknown.message, /nope/);
});

check("errors: an unknown column in a filter or select is Postgres' 42703", async () => {
  assert.equal((await failed(items().select("id").eq("nope", 1), 400)).code, "42703");
  assert.equal((await failed(items().select("id,nope"), 400)).code, "42703");
});

let passed = 0;
let failures = 0;
for (const [name, fn] of checks) {
  try {
    const reset = await db.rpc("reset_items");
    if (reset.error) throw new Error(`rpc reset_items: ${reset.status} ${JSON.stringify(reset.error)}`);
    await fn();
    passed += 1;
    console.log(`ok ${name}`);
  } catch (error) {
    failures += 1;
    console.log(`FAIL ${name}: ${error.message.split("\n").join(" | ").slice(0, 400)}`);
  }
}
console.log(`${passed} passed, ${failures} failed`);
process.exit(failures ? 1 : 0);
