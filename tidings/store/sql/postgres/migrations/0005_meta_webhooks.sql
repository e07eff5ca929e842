-- Meta's status webhooks (issue 12) find a WhatsApp or Messenger message by its provider id whatever its
-- status (Read comes after Delivered; messages_waiting_ext_id holds only Submitted ones), and a Messenger
-- watermark finds every earlier message to one PSID. Partial: other channels' inserts pay nothing.
CREATE INDEX messages_meta_ext_id ON messages (ext_id) WHERE channel IN ('whatsapp', 'fb');
CREATE INDEX messages_fb_address ON messages (service_id, address, created_at) WHERE channel = 'fb';
