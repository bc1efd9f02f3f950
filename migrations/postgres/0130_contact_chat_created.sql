-- When a contact or chat was first seen: Evolution's `createdAt` of its Contact and Chat rows
-- (findContacts shows it; findChats' `windowStart` is the chat's). Rows from before this
-- migration take their last update as the best known value.
ALTER TABLE contacts ADD COLUMN created_at BIGINT;
ALTER TABLE chats ADD COLUMN created_at BIGINT;
UPDATE contacts SET created_at = updated_at;
UPDATE chats SET created_at = updated_at;
