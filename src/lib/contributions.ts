// What a resource module adds to the account export and to GET /admin/stats,
// registered by the module itself, so that users and admin name none of them.
// One registry per app (on AppServices); read in registration order.
import type { z } from 'zod';

/** One list of the account export: the user's rows, already in their exported shape, streamed. */
export type ExportSection = {
  /** The document's key, placed after `sessions`. */
  name: string;
  /** One item's shape, for the OpenAPI document. */
  item: z.ZodType;
  rows: (userId: string) => AsyncIterable<unknown>;
};

/**
 * The value types of the stats contributions, by key: a module adds its own
 * with `declare module` so the typed client keeps them.
 */
// biome-ignore lint/suspicious/noEmptyInterface: filled by declaration merging
export interface StatsSections {}

/** One key of GET /admin/stats, placed after `roles`. */
export type StatsContribution<K extends keyof StatsSections = keyof StatsSections> = {
  name: K;
  schema: z.ZodType<StatsSections[K]>;
  read: () => Promise<StatsSections[K]>;
};

export class Contributions {
  private readonly sections: ExportSection[] = [];
  private readonly stats: StatsContribution[] = [];
  // The routes build their schemas from what is registered when they are made:
  // a registration after the first read would be missing from the document.
  private read = false;
  private readonly modules = new Set<string>();

  /**
   * A module's registrations, made the first time its routes are built for
   * this app (a test may build a surface twice over the same services).
   */
  registerOnce(module: string, register: (c: Contributions) => void): void {
    if (this.modules.has(module)) return;
    this.modules.add(module);
    register(this);
  }

  addExportSection(section: ExportSection): void {
    this.add(this.sections, section);
  }

  addStats<K extends keyof StatsSections>(part: StatsContribution<K>): void {
    this.add(this.stats, part as unknown as StatsContribution);
  }

  get exportSections(): readonly ExportSection[] {
    this.read = true;
    return this.sections;
  }

  get statsContributions(): readonly StatsContribution[] {
    this.read = true;
    return this.stats;
  }

  private add<T extends { name: string }>(list: T[], item: T): void {
    if (this.read) throw new Error(`${item.name} registered after the routes that read the contributions were built`);
    if (list.some((i) => i.name === item.name)) throw new Error(`${item.name} registered twice`);
    list.push(item);
  }
}
