// Request and response schemas of the posts module.
import { z } from 'zod';
import { limitSchema, multiLine, PLAIN_TEXT, singleLine } from '../../lib/schemas.js';

export const PostSchema = z.object({
  id: z.uuid(),
  title: z.string(),
  body: z.string(),
  authorId: z.uuid(),
  createdAt: z.iso.datetime(),
});
export type Post = z.infer<typeof PostSchema>;

export const PostListSchema = z.object({ items: z.array(PostSchema), nextCursor: z.string().nullable() });
export type PostList = z.infer<typeof PostListSchema>;

export const CreatePostBody = z.strictObject({
  title: z.string().trim().min(1, 'Must not be empty').max(200, 'At most 200 characters').refine(singleLine, PLAIN_TEXT),
  body: z.string().min(1, 'Must not be empty').max(10_000, 'At most 10000 characters').refine(multiLine, PLAIN_TEXT),
});

export const ListPostsQuery = z.strictObject({ limit: limitSchema, cursor: z.string().max(200).optional() });

/** One post in the account export (the author is the exporting user). */
export const ExportedPostSchema = z.object({ id: z.uuid(), title: z.string(), body: z.string(), createdAt: z.string() });
export type ExportedPost = z.infer<typeof ExportedPostSchema>;

/** The posts part of GET /admin/stats. */
export const PostStatsSchema = z.object({ total: z.number().int() });
export type PostStats = z.infer<typeof PostStatsSchema>;
