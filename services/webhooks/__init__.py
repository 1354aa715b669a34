"""The webhooks service: signed, retried, isolated deliveries of events to customer URLs."""
