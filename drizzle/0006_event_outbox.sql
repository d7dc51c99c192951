CREATE TABLE "event_outbox" (
	"id" uuid PRIMARY KEY NOT NULL,
	"type" text NOT NULL,
	"payload" text NOT NULL,
	"created_at" timestamp (3) with time zone DEFAULT now() NOT NULL,
	"claimed_until" timestamp (3) with time zone,
	"relayed_at" timestamp (3) with time zone
);
--> statement-breakpoint
CREATE INDEX "event_outbox_relay_idx" ON "event_outbox" USING btree ("relayed_at","created_at");