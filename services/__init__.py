"""Services: one business action each, with one entry point and a result that says what
happened. Handlers (Telegram), doors and jobs call them; they speak to the database through
`models/` and to the outside world through durable steps (jobs), never directly."""
