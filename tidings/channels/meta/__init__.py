"""Meta's Graph API channels: WhatsApp (the Cloud API) and Messenger (the Send API)."""
