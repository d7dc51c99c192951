// The strategy of each provider type, made once per app (each keeps its own
// caches, such as discovered configurations).
import type { AppServices } from '../../deps.js';
import { githubStrategy } from './github.js';
import { oidcStrategy } from './oidc.js';
import type { UpstreamType } from './providers.js';
import type { UpstreamStrategy } from './strategy.js';

export type UpstreamStrategies = Partial<Record<UpstreamType, UpstreamStrategy>>;

export function upstreamStrategies(svc: Pick<AppServices, 'config' | 'clock' | 'logger'>): UpstreamStrategies {
  return {
    oidc: oidcStrategy(svc),
    github: githubStrategy(svc),
  };
}
