// One name for this test run's PostgreSQL schemas, and their removal once every worker is done.
// Dropping a schema while another worker migrates breaks that worker: Kysely's migrator looks at
// the tables of every schema in the database, and a schema dropped under it is an error
// ("schema ... does not exist"). So no schema is dropped until the whole run is over.
import pg from "pg";

export default function setup() {
  const run = `${process.pid}x${Date.now().toString(36)}`;
  process.env.KINCARE_TEST_RUN = run;
  return async () => {
    const url = process.env.DATABASE_URL;
    if (!url || !/^postgres(ql)?:\/\//i.test(url)) return;
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      const { rows } = await client.query<{ nspname: string }>(
        "select nspname from pg_namespace where nspname like $1",
        [`kc_test_${run}_%`],
      );
      for (const { nspname } of rows)
        await client.query(`DROP SCHEMA IF EXISTS ${nspname} CASCADE`);
    } finally {
      await client.end();
    }
  };
}
