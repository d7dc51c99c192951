-- Newest-first audit pages now read the (at, id) primary key backwards; the
-- filter indexes become ascending to match (a backward scan gives plain DESC),
-- under new names so no name is dropped and re-created in one transaction.
DROP INDEX "audit_at_idx";--> statement-breakpoint
DROP INDEX "audit_actor_idx";--> statement-breakpoint
DROP INDEX "audit_action_idx";--> statement-breakpoint
DROP INDEX "audit_status_idx";--> statement-breakpoint
CREATE INDEX "audit_actor_time_idx" ON "audit_logs" USING btree ("actor_id","at","id");--> statement-breakpoint
CREATE INDEX "audit_action_time_idx" ON "audit_logs" USING btree ("action","at","id");--> statement-breakpoint
CREATE INDEX "audit_status_time_idx" ON "audit_logs" USING btree ("status","at","id");