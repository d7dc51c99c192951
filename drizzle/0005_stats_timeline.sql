CREATE TABLE "stats_hourly" (
	"hour" timestamp (3) with time zone NOT NULL,
	"name" text NOT NULL,
	"value" bigint DEFAULT 0 NOT NULL,
	CONSTRAINT "stats_hourly_pkey" PRIMARY KEY("hour","name")
);
