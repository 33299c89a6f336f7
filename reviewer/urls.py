from django.urls import path

from reviewer.editor import views
from reviewer.worklists import views as worklists

app_name = "reviewer"

urlpatterns = [
    path("my-work/", worklists.my_work, name="my-work"),
    path("images/<int:image_id>/", views.image_page, name="image"),
    path("images/<int:image_id>/submit", views.submit, name="submit"),
    path("images/<int:image_id>/skip", views.skip, name="skip"),
    path("images/<int:image_id>/lease", views.renew_lease, name="lease"),
    path("images/<int:image_id>/reopen", views.reopen, name="reopen"),
    path("<slug:slug>/<str:name>/next", views.next_image, name="next"),
    path("<slug:slug>/<str:name>/back", views.back, name="back"),
    path("<slug:slug>/<str:name>/images/", worklists.image_list, name="images"),
    path("<slug:slug>/<str:name>/order", worklists.queue_order, name="queue-order"),
]
