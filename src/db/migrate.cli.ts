// `npm run db:migrate`: apply pending migrations and exit.
import { ConfigError, loadConfig, loadDotEnv } from '../config.js';
import { connectDatabase } from './connect.js';
import { migrate } from './migrate.js';

loadDotEnv();
try {
  const config = loadConfig();
  const database = await connectDatabase({ ...config.database, dataDir: config.dataDir });
  const { applied } = await migrate(database.db);
  console.log(`migrations applied: ${applied} (${database.kind})`);
  await database.close();
} catch (err) {
  console.error(err instanceof ConfigError ? err.message : err);
  process.exit(1);
}
