// The registry the export and /admin/stats are built from: a contribution that
// arrives after the routes read it, or twice, would change the document
// unnoticed, so it fails at start instead.
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { Contributions } from '../../src/lib/contributions.js';

const section = (name: string) => ({ name, item: z.object({ id: z.string() }), rows: async function* () {} });

describe('contributions', () => {
  it('keeps the order of registration', () => {
    const c = new Contributions();
    c.addExportSection(section('b'));
    c.addExportSection(section('a'));
    expect(c.exportSections.map((s) => s.name)).toEqual(['b', 'a']);
  });

  it('refuses a name registered twice', () => {
    const c = new Contributions();
    c.addExportSection(section('notes'));
    expect(() => c.addExportSection(section('notes'))).toThrow(/twice/);
  });

  it('refuses a registration after the routes read the registry', () => {
    const c = new Contributions();
    void c.statsContributions;
    expect(() => c.addExportSection(section('late'))).toThrow(/after the routes/);
  });

  it("takes a module's registrations once, however often its routes are built", () => {
    const c = new Contributions();
    const register = () => c.registerOnce('notes', (r) => r.addExportSection(section('notes')));
    register();
    void c.exportSections;
    expect(register).not.toThrow();
    expect(c.exportSections.map((s) => s.name)).toEqual(['notes']);
  });
});
