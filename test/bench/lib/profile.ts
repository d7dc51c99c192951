// Summarises a V8 .cpuprofile (node --cpu-prof): self time per function and
// per module (a package under node_modules, a file of the service, Node's
// internals), as shares of the busy (non-idle) time.
import { readFileSync } from 'node:fs';

type Node = {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number };
  children?: number[];
};
type Profile = { nodes: Node[]; samples: number[]; timeDeltas: number[]; startTime: number; endTime: number };

export type ProfileSummary = {
  file: string;
  totalMs: number;
  idleMs: number;
  busyMs: number;
  gcMs: number;
  functions: { name: string; where: string; module: string; selfMs: number; pct: number }[];
  modules: { module: string; selfMs: number; pct: number }[];
  /** Time under each function (self + callees), each sample counted once per function. */
  inclusive: { name: string; where: string; module: string; totalMs: number; pct: number }[];
  /** Native and GC self time, charged to the nearest JavaScript caller. */
  nativeByCaller: { caller: string; native: string; selfMs: number; pct: number }[];
};

/** The module a script URL belongs to: a package, a file of the service, or a Node internal. */
export function moduleOf(url: string): string {
  if (!url) return '(native/V8)';
  if (url.startsWith('node:')) return url;
  const nm = url.lastIndexOf('/node_modules/');
  if (nm >= 0) {
    const rest = url.slice(nm + '/node_modules/'.length).split('/');
    return rest[0]!.startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0]!;
  }
  const m = /\/(dist|src)\/(.*)$/.exec(url);
  if (m) return `service:${m[2]}`;
  return url.replace(/^file:\/\//, '');
}

export function summariseProfile(file: string, top = 30): ProfileSummary {
  const p = JSON.parse(readFileSync(file, 'utf8')) as Profile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const self = new Map<number, number>();
  // timeDeltas[i] is the time before sample i; attribute it to sample i's node.
  for (let i = 0; i < p.samples.length; i++) {
    const id = p.samples[i]!;
    self.set(id, (self.get(id) ?? 0) + (p.timeDeltas[i] ?? 0));
  }
  let totalUs = 0;
  let idleUs = 0;
  let gcUs = 0;
  const fn = new Map<string, { name: string; where: string; module: string; us: number }>();
  const mod = new Map<string, number>();
  for (const [id, us] of self) {
    const n = byId.get(id)!;
    const { functionName, url, lineNumber } = n.callFrame;
    totalUs += us;
    if (functionName === '(idle)') {
      idleUs += us;
      continue;
    }
    if (functionName === '(garbage collector)') gcUs += us;
    const module = functionName.startsWith('(') ? functionName : moduleOf(url);
    const where = url ? `${url.replace(/^file:\/\//, '').replace(/^.*\/(node_modules|dist|src)\//, '$1/')}:${lineNumber + 1}` : '';
    const key = `${functionName}|${url}|${lineNumber}`;
    const e = fn.get(key) ?? { name: functionName || '(anonymous)', where, module, us: 0 };
    e.us += us;
    fn.set(key, e);
    mod.set(module, (mod.get(module) ?? 0) + us);
  }
  const busyUs = totalUs - idleUs;
  const pct = (us: number) => Math.round((us / busyUs) * 1000) / 10;

  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const label = (n: Node) => {
    const { functionName, url, lineNumber } = n.callFrame;
    const where = url ? `${url.replace(/^file:\/\//, '').replace(/^.*\/(node_modules|dist|src)\//, '$1/')}:${lineNumber + 1}` : '';
    return { name: functionName || '(anonymous)', where, module: functionName.startsWith('(') ? functionName : moduleOf(url) };
  };
  const incl = new Map<string, { name: string; where: string; module: string; us: number }>();
  const nat = new Map<string, { caller: string; native: string; us: number }>();
  for (const [id, us] of self) {
    const leaf = byId.get(id)!;
    if (leaf.callFrame.functionName === '(idle)') continue;
    const seen = new Set<string>();
    let cur: number | undefined = id;
    let nativeCaller: string | undefined = leaf.callFrame.url ? 'js' : undefined;
    while (cur !== undefined) {
      const n = byId.get(cur)!;
      const l = label(n);
      const key = `${l.name}|${l.where}`;
      if (l.name !== '(root)' && !seen.has(key)) {
        seen.add(key);
        const e = incl.get(key) ?? { ...l, us: 0 };
        e.us += us;
        incl.set(key, e);
      }
      if (nativeCaller === undefined && n.callFrame.url) {
        nativeCaller = `${l.name} ${l.where}`;
        const k = `${nativeCaller}|${leaf.callFrame.functionName}`;
        const e = nat.get(k) ?? { caller: nativeCaller, native: leaf.callFrame.functionName, us: 0 };
        e.us += us;
        nat.set(k, e);
      }
      cur = parent.get(cur);
    }
  }
  return {
    file,
    totalMs: Math.round(totalUs / 1000),
    idleMs: Math.round(idleUs / 1000),
    busyMs: Math.round(busyUs / 1000),
    gcMs: Math.round(gcUs / 1000),
    functions: [...fn.values()]
      .sort((a, b) => b.us - a.us)
      .slice(0, top)
      .map((e) => ({ name: e.name, where: e.where, module: e.module, selfMs: Math.round(e.us / 1000), pct: pct(e.us) })),
    modules: [...mod.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([module, us]) => ({ module, selfMs: Math.round(us / 1000), pct: pct(us) })),
    inclusive: [...incl.values()]
      .sort((a, b) => b.us - a.us)
      .slice(0, top * 3)
      .map((e) => ({ name: e.name, where: e.where, module: e.module, totalMs: Math.round(e.us / 1000), pct: pct(e.us) })),
    nativeByCaller: [...nat.values()]
      .sort((a, b) => b.us - a.us)
      .slice(0, top)
      .map((e) => ({ caller: e.caller, native: e.native, selfMs: Math.round(e.us / 1000), pct: pct(e.us) })),
  };
}

export function printProfile(s: ProfileSummary, print: (line: string) => void, top = 25): void {
  print(`${s.file}`);
  print(
    `  busy ${s.busyMs} ms of ${s.totalMs} ms sampled (idle ${s.idleMs} ms, GC ${s.gcMs} ms = ${((s.gcMs / s.busyMs) * 100).toFixed(1)}% of busy)`,
  );
  print('  self time by module (% of busy):');
  for (const m of s.modules.slice(0, 15)) print(`    ${m.pct.toFixed(1).padStart(5)}%  ${m.module}`);
  print('  self time by function (% of busy):');
  for (const f of s.functions.slice(0, top)) print(`    ${f.pct.toFixed(1).padStart(5)}%  ${f.name}  ${f.where}  [${f.module}]`);
  print('  native/GC self time by nearest JavaScript caller:');
  for (const f of s.nativeByCaller.slice(0, 12)) print(`    ${f.pct.toFixed(1).padStart(5)}%  ${f.native} ← ${f.caller}`);
  print("  inclusive time under the service's own functions:");
  for (const f of s.inclusive.filter((f) => f.module.startsWith('service:')).slice(0, top)) {
    print(`    ${f.pct.toFixed(1).padStart(5)}%  ${f.name}  ${f.where}`);
  }
}

if (process.argv[1]?.endsWith('profile.ts')) {
  process.stdout.on('error', () => process.exit(0)); // | head
  for (const f of process.argv.slice(2)) printProfile(summariseProfile(f), console.log);
}
